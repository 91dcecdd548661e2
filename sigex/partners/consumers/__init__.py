"""Reference consumers: a municipality inbox, an NLA case intake, an outcome responder."""
