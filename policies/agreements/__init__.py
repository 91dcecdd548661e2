"""Exchange agreements as YAML files (a package only so that the files ship with sigex)."""
