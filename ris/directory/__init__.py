"""The Annuaire Santé directory (RIS.ANN.01–05): streaming import of the public extractions of
annuaire.sante.fr (professionals and their activities, MSSanté mailboxes), the update of the RIS's own users
and correspondents from them, and the search of a correspondent's MSSanté address."""
