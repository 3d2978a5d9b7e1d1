NAMES = [n.upper() for n in ("a", "b")]
