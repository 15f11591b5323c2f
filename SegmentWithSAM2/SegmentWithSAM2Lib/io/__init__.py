"""Files in and out (SimpleITK, slicerio) for the library and the command line."""
