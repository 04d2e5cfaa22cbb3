"""SSD with a MobileNetV1 body (paper Table 13; TF Object Detection API layout).

Composition after torchvision's detectors: backbone taps + extra layers (``ssd.SSD``), anchor
generator (``anchors``), box coder (``box_coder``), matcher and loss (``matcher``, ``loss``),
post-process (``postprocess``). Boxes say their format in their names (``boxes_xyxy``).
"""
