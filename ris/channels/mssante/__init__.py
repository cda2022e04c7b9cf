"""MSSanté sent by the engine itself (the "direct" route): the mail and its IHE_XDM.zip, submission to
the operator over TLS with the structure's certificate, and the store side of each delivery."""
