"""SmartUnion (智慧工会平台): one platform for a federation of trade unions."""

__version__ = "0.1.0"
