"""The in-repo BGE model core and its mteb adapter."""
