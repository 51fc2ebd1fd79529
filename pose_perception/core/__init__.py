"""ROS-free core: image in, keypoints out; depth math; tracking; safety. Never imports rclpy."""
