"""The DMP fed by the engine itself (the "direct" route, dmp-xds.md): XDS.b metadata read from the CDA
header, the signed VIHF assertion, ITI-41 / ITI-57 / ITI-62 over SOAP 1.2 (MTOM for the document) with
the structure's client certificate, and the store side of each delivery."""
