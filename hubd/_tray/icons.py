"""The tray icon's pictures, drawn with Pillow: one per `TrayState`.

Each state has its own colour *and* its own white glyph, so the state reads at a glance on a
16-pixel panel and for people who do not tell green from red. Drawn 4x large and scaled down,
because Pillow draws without anti-aliasing.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from hubd._tray.state import TrayState

ICON_SIZE_PX = 64
_SUPERSAMPLE = 4

RGB = tuple[int, int, int]

# Fill colours; the tests compare screenshots against these.
STATE_COLOURS: dict[TrayState, RGB] = {
    TrayState.RUNNING: (46, 160, 67),  # green
    TrayState.STARTING: (230, 150, 0),  # amber
    TrayState.FAILING: (207, 34, 46),  # red
    TrayState.STOPPED: (88, 96, 105),  # slate
    TrayState.UNREACHABLE: (150, 150, 150),  # light grey, drawn as an outline only
}

_WHITE = (255, 255, 255, 255)


def _darker(colour: RGB, factor: float = 0.7) -> tuple[int, int, int, int]:
    return (int(colour[0] * factor), int(colour[1] * factor), int(colour[2] * factor), 255)


def draw_icon(state: TrayState, size: int = ICON_SIZE_PX) -> Image.Image:
    """The icon for `state`, an RGBA square of `size` pixels."""
    big = size * _SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    colour = STATE_COLOURS[state]
    unit = big / 64  # glyph coordinates below are on a 64-unit grid

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0 * unit, y0 * unit, x1 * unit, y1 * unit)

    if state is TrayState.UNREACHABLE:
        # Hollow, with a slash: "nothing there", and it stays quiet next to live icons.
        grey = (*colour, 255)
        draw.ellipse(box(5, 5, 59, 59), outline=grey, width=round(7 * unit))
        draw.line(
            [(16 * unit, 48 * unit), (48 * unit, 16 * unit)], fill=grey, width=round(7 * unit)
        )
    else:
        draw.ellipse(box(2, 2, 62, 62), fill=_darker(colour))
        draw.ellipse(box(5, 5, 59, 59), fill=(*colour, 255))
        _draw_glyph(draw, state, unit)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _draw_glyph(draw: ImageDraw.ImageDraw, state: TrayState, unit: float) -> None:
    def pt(x: float, y: float) -> tuple[float, float]:
        return (x * unit, y * unit)

    stroke = round(7 * unit)
    if state is TrayState.RUNNING:  # a check mark
        draw.line([pt(18, 33), pt(28, 43), pt(46, 22)], fill=_WHITE, width=stroke, joint="curve")
    elif state is TrayState.STARTING:  # a circular arrow
        draw.arc(
            (17 * unit, 17 * unit, 47 * unit, 47 * unit),
            start=-60,
            end=220,
            fill=_WHITE,
            width=stroke,
        )
        draw.polygon([pt(40, 12), pt(52, 26), pt(36, 28)], fill=_WHITE)
    elif state is TrayState.FAILING:  # an exclamation mark
        draw.rounded_rectangle(
            (28 * unit, 13 * unit, 36 * unit, 38 * unit), radius=3 * unit, fill=_WHITE
        )
        draw.ellipse((27.5 * unit, 43 * unit, 36.5 * unit, 52 * unit), fill=_WHITE)
    elif state is TrayState.STOPPED:  # a stop square
        draw.rounded_rectangle(
            (21 * unit, 21 * unit, 43 * unit, 43 * unit), radius=2 * unit, fill=_WHITE
        )


def app_icon_svg() -> str:
    """hubd's application icon (the running hub's face: the green disc with its check mark) as
    SVG, on the same 64-unit grid as `draw_icon`, for the desktop's scalable icon theme."""
    r, g, b = STATE_COLOURS[TrayState.RUNNING]
    dr, dg, db, _alpha = _darker(STATE_COLOURS[TrayState.RUNNING])
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">\n'
        "  <title>hubd</title>\n"
        f'  <circle cx="32" cy="32" r="30" fill="rgb({dr},{dg},{db})"/>\n'
        f'  <circle cx="32" cy="32" r="27" fill="rgb({r},{g},{b})"/>\n'
        '  <polyline points="18,33 28,43 46,22" fill="none" stroke="#fff" stroke-width="7"'
        ' stroke-linecap="round" stroke-linejoin="round"/>\n'
        "</svg>\n"
    )
