"""The RIS worklist: a JSON file of patients, orders and reports read as a stream with bounded memory
(`reader`), each record checked and loaded into the store, drafts and provisional reports updated in
place (`loader`)."""
