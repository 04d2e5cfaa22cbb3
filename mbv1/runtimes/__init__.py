"""The runtimes mbv1 runs a network on, below every domain: ONNX and TFLite files written from
a module (``onnx_file``, ``tflite_file``), int8 quantisation (``quantize``), the ONNX Runtime and
OpenVINO runners (``runners``) and the parity-checked export cache behind ``--backend auto``
(``cached``: ``FastForward``, ``runtime_for``). Domains (detection, classification, geo,
faces, teachers) call these; :mod:`mbv1.export`, which knows each domain's export spec, sits
above them."""
