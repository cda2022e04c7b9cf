"""`ris configure site.toml`: the site's blocks (site settings and every endpoint) written from one
documented TOML file (docs/site.example.toml), the way Prefect users keep configuration as code.

The whole file is validated before anything is saved: an unknown setting, a missing one or a wrong value
is refused with its place in the file and the rule, and no block changes. Each section present replaces
its block as a whole (a setting left out goes back to its default); a section left out leaves its block
as it is.
"""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

import typer
from prefect.blocks.core import Block
from pydantic import BaseModel, ValidationError

from blocks import DEFAULT_NAME
from blocks.certificates import RppsRangCertificates
from blocks.dmp import DmpEndpoint
from blocks.insi import InsiEndpoint
from blocks.mail import MailSender
from blocks.mssante import MssanteOperator
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from cli.acting import acting, by_option
from cli.common import fail, require_answering_api
from ris.auth import roles
from ris.site.settings import SiteSettings

# TOML section -> the block it writes (the site settings are the block's one `settings` member).
SECTIONS: dict[str, type[Block]] = {
    "site": SiteSettingsBlock,
    "pfi": PfiEndpoint,
    "insi": InsiEndpoint,
    "mail": MailSender,
    "mssante": MssanteOperator,
    "dmp": DmpEndpoint,
    "certificates": RppsRangCertificates,
}


class InvalidConfiguration(ValueError):
    """The file cannot be applied; each problem names the setting and the rule."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _unknown(model: type[BaseModel], data: dict[str, Any], where: str) -> list[str]:
    """Settings the model does not have (pydantic would silently drop them: a typo would go unnoticed)."""
    problems = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            known = ", ".join(model.model_fields)
            problems.append(f"{where}{key}: unknown setting (known here: {known})")
            continue
        nested = field.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel) and isinstance(value, dict):
            problems.extend(_unknown(nested, value, f"{where}{key}."))
    return problems


def _errors(exc: ValidationError, where: str) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        place = ".".join(str(part) for part in error["loc"])
        problems.append(
            f"{where}{place}: {error['msg']}" if place else f"{where.rstrip('.')}: {error['msg']}"
        )
    return problems


def parse(text: str, source: str) -> dict[str, Block]:
    """The blocks the file describes, all validated; InvalidConfiguration with every problem otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfiguration([f"{source}: not valid TOML ({exc})"]) from exc
    problems = [
        f"{source}: [{name}]: unknown section (known: {', '.join(SECTIONS)})"
        for name in data
        if name not in SECTIONS
    ]
    problems += [f"{source}: [{name}]: must be a table" for name in data if not isinstance(data[name], dict)]
    if not data:
        problems.append(f"{source}: no section: give at least one of [{'], ['.join(SECTIONS)}]")
    if problems:
        raise InvalidConfiguration(problems)
    blocks: dict[str, Block] = {}
    for name, values in data.items():
        where = f"{source}: {name}."
        model = SiteSettings if name == "site" else SECTIONS[name]
        unknown = _unknown(model, values, where)
        if unknown:
            problems.extend(unknown)
            continue
        try:
            if name == "site":
                blocks[name] = SiteSettingsBlock(settings=SiteSettings.model_validate(values))
            else:
                blocks[name] = SECTIONS[name].model_validate(values)
        except ValidationError as exc:
            problems.extend(_errors(exc, where))
    if problems:
        raise InvalidConfiguration(problems)
    return blocks


async def save(blocks: dict[str, Block], name: str) -> None:
    for block in blocks.values():
        await type(block).register_type_and_schema()
        await block.asave(name, overwrite=True)


ConfigureBy = by_option("The administrator")


def register(app: typer.Typer) -> None:
    @app.command("configure")
    def configure(
        path: Path = typer.Argument(..., help="The site's TOML file (see docs/site.example.toml)"),
        name: str = typer.Option(DEFAULT_NAME, help="Name of the blocks to write"),
        check: bool = typer.Option(False, "--check", help="Validate the file only; write nothing"),
        by: str | None = ConfigureBy,
    ) -> None:
        """Write the site settings and endpoint blocks ([site], [pfi], [insi], [mail], [mssante], [dmp],
        [certificates]) from a TOML file, after validating all of it."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})")
        except UnicodeDecodeError as exc:
            fail(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8")
        try:
            blocks = parse(text, str(path))
        except InvalidConfiguration as exc:
            fail(f"nothing was saved:\n{exc}")
        if check:
            typer.echo(f"{path} is valid: {', '.join(blocks)}")
            return
        acting(by, roles.CONFIGURE)
        require_answering_api("`ris configure`")
        asyncio.run(save(blocks, name))
        saved = ", ".join(f"{type(b).get_block_type_name()} {name!r}" for b in blocks.values())
        typer.echo(f"saved: {saved}")
