"""The HL7 v2 wire layer: ER7 text, MSH, MSH-10, ACK and MLLP, shared by the identity feed and the channels.

It sits below both: it imports nothing from `ris.identity` nor `ris.channels` (tests/test_architecture.py).
"""
