"""Identity: INS, NIR/NIA key, RNIV statuses, INSi, PAM-FR intake, Datamatrix INS."""
