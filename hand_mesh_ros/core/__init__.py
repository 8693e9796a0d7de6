"""Pure numpy/OpenCV core: camera model, hand model, detection, tracking, tailor.

Nothing under this package imports rclpy or any ROS message package.
"""
