def f(path):
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as exc:
        text = str(exc)
    return text
