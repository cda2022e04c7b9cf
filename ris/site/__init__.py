"""What a site sets: the site settings block's model (`settings`: identity, routing, channels,
announcement, reminders), the identity proofs it accepts (`justificatifs`), the INSi verification contract
(`insi_verification`), the HL7 listeners (`listeners`), the targets of the contextual
calls (`call_targets`), the engine process's environment (`engine`: data folder, database, pool sizes) and
the specialties' value set (`specialties`). Everything here describes and checks values: it reads no
database and calls no peer."""
