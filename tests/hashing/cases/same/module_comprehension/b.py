NAMES = [name.upper() for name in ("a", "b")]
