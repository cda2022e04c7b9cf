"""Local protocol peers standing in for the national services. They never import `ris`."""
