"""The embed-*.py scripts' one shared piece: bytes as the lines of a C string
literal (octal escapes, 64 bytes a line), so any byte, NUL included, survives
the compiler exactly. Imported from the scripts' own directory."""


def c_string_lines(data, indent="\t"):
    """The lines (with their newlines) of a C string literal holding `data`; '""' when empty."""
    if not data:
        return [indent + '""\n']
    return [indent + '"' + "".join("\\%03o" % b for b in data[i:i + 64]) + '"\n'
            for i in range(0, len(data), 64)]
