"""The relay: a command-line client that follows an inbox's event stream and forwards each stored
delivery, byte for byte, to a local URL. It needs no Django project of its own."""
