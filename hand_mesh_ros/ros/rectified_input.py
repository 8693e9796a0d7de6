"""Rectified images: camera_info P for the pixels, D and R left out; a warning for a mix-up.

image_pipeline's convention: a raw image (``image_raw``, ``image_color``) goes with K and D;
a rectified one (``image_rect``, ``image_rect_color``, OAK-D's and ZED's rectified outputs)
goes with P, and D no longer applies (the image is already undistorted). As in image_geometry,
P projects points of the rectified camera's frame, so R (raw -> rectified rotation; identity
for a monocular camera) is left out too. ``input.rectified`` tells the node which it gets;
undistorting a rectified image a second time bends every keypoint the wrong way.
"""

from hand_mesh_ros.core.errors import CameraModelError

#: Topic name endings of rectified image streams (image_proc, stereo_image_proc, drivers).
RECT_SUFFIXES = ('_rect', '_rect_color', '_rect_mono', '_rect_raw')
#: CameraInfo R read as "no rotation" by the camera model (row-major identity).
IDENTITY_R = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def rectified_fields(fields):
    """Return camera_info fields for a rectified image: R the identity (P and D as given).

    ``fields`` is :func:`hand_mesh_ros.ros.camera_info.camera_info_fields`'s tuple; the
    camera model's ``rectified=True`` path then takes its intrinsics from P and drops D.

    Raises:
        CameraModelError: P holds no intrinsics (all zero), as a raw camera's calibration
            may have: the node cannot know the rectified image's focal length.

    """
    p = fields[6]
    if not any(p[0:3]) or not any(p[4:7]):
        raise CameraModelError(
            'input.rectified is true but camera_info P has no intrinsics (P is zero): '
            'publish the calibration with P, or set input.rectified false for a raw image')
    return fields[:5] + (IDENTITY_R,) + fields[6:]


def rect_topic_warning(image_topic, rectified):
    """Return a warning when the image topic looks rectified but ``rectified`` is false."""
    base = image_topic[:-len('/compressed')] if image_topic.endswith('/compressed') \
        else image_topic
    if not rectified and base.endswith(RECT_SUFFIXES):
        return ('image topic %s looks rectified but input.rectified is false: the node will '
                'undistort it again with camera_info D; set input.rectified:=true (uses P) '
                'for a rectified image (warned once)' % image_topic)
    return ''


def warn_rect_topic(warn, image_topic, rectified):
    """Call ``warn(message)`` once when :func:`rect_topic_warning` has a warning."""
    message = rect_topic_warning(image_topic, rectified)
    if message:
        warn(message)
