"""What a site sets: the site settings block's model (`settings`: identity, routing, channels,
announcement, reminders), the HL7 listeners (`listeners`), the contextual calls' partners
(`contextual_calls`), the engine process's environment (`engine`: data folder, database, pool sizes) and
the specialties' value set (`specialties`). Everything here only describes and checks values: it reads
no database and calls no peer."""
