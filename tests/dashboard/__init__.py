"""Browser tests of the web dashboard against a real ``blitz serve``."""
