"""Delivery channels: the clients that carry a built report to its recipients (HL7 v2 to the PFI...)."""
