"""Argument checks shared by the large-kernel layers."""


def check_positive_int(name: str, value, odd: bool = False) -> None:
    """Raise unless ``value`` is a positive int (and odd if ``odd``).

    Args:
        name (str): The argument's name, quoted in the message.
        value: The value to check; ``bool`` is refused.
        odd (bool): Also require an odd value (a kernel size: the "same"
            padding ``k // 2`` is centred only for odd sizes).
            Defaults to False.

    Raises:
        ValueError: Naming ``name`` and the allowed values.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 \
            or (odd and value % 2 == 0):
        kind = 'positive odd int (the "same" padding of a kernel is ' \
            'centred only for odd sizes)' if odd else 'positive int'
        raise ValueError(f'`{name}` must be a {kind}, got {value!r}.')


def check_mixer_sizes(channels, kernel_size, small_kernel_size) -> None:
    """Check the sizes of a large-kernel mixer.

    Args:
        channels: Must be a positive int.
        kernel_size: The large kernel size ``K``, a positive odd int.
        small_kernel_size: The small kernel size ``s``, a positive odd int
            ``<= K``.

    Raises:
        ValueError: Naming the offending argument.
    """
    check_positive_int('channels', channels)
    check_positive_int('kernel_size', kernel_size, odd=True)
    check_positive_int('small_kernel_size', small_kernel_size, odd=True)
    if small_kernel_size > kernel_size:
        raise ValueError(
            f'`small_kernel_size` ({small_kernel_size}) must be <= '
            f'`kernel_size` ({kernel_size}).')
