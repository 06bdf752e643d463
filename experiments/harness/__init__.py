"""The skeleton every experiment runs in: config -> checks -> Context -> run -> recorded files."""
