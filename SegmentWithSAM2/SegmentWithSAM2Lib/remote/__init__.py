"""Remote inference (issue 20): the server's token book first; the server and client follow."""
