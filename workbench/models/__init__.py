"""Model references, availability without network, loaders, `workbench models list|pull`, and the tiny offline kit."""
