"""`protokit dev`: run the service and follow every save (see session). The modules: target (what to run),
process (one run of the service), session (reacting to changes, and the watch loop)."""
