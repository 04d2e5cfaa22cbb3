"""Draw labelled boxes on RGB frames (OpenCV), shared by ``detect`` and ``faces``."""

from __future__ import annotations

import numpy as np

PALETTE = [(255, 56, 56), (56, 200, 255), (80, 220, 80), (255, 178, 29), (180, 90, 255),
           (255, 112, 200), (0, 194, 180), (140, 140, 255), (255, 150, 90), (120, 200, 40)]


def draw_boxes(rgb: np.ndarray, boxes_xyxy: np.ndarray, captions: list[str],
               colors: list[int] | None = None) -> np.ndarray:
    """A copy of ``uint8 [H, W, 3]`` RGB with each box drawn and captioned."""
    import cv2

    out = np.ascontiguousarray(rgb).copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 300))
    scale = max(0.35, min(h, w) / 900)
    for i, (box, text) in enumerate(zip(boxes_xyxy, captions)):
        color = PALETTE[(colors[i] if colors is not None else 0) % len(PALETTE)]
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thick, cv2.LINE_AA)
        if text:
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, thick - 1))
            ty = y0 - 2 if y0 - th - base - 2 >= 0 else min(h - 1, y1 + th + base + 2)
            cv2.rectangle(out, (x0, ty - th - base), (x0 + tw + 2, ty + 1), color, -1)
            cv2.putText(out, text, (x0 + 1, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), max(1, thick - 1), cv2.LINE_AA)
    return out
