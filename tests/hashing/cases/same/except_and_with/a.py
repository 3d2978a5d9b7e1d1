def f(path):
    try:
        with open(path) as handle:
            data = handle.read()
    except OSError as error:
        data = str(error)
    return data
