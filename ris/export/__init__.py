"""Portability export (RIS.PORT.01): the health-data history the engine keeps, in a documented, structured
folder a site hands to a client or to another software. `writer` streams it (flat memory), `schemas`
describes each file, `verify` re-reads an export and proves it complete."""
