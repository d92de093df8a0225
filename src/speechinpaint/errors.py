"""The one exception type the CLI turns into a single clear line on stderr and a non-zero exit."""


class SpeechInpaintError(Exception):
    """A problem with the user's input (file, mask, checkpoint, option) rather than a bug."""
