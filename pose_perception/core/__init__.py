"""ROS-free core: image in, keypoints out; depth math; tracking; safety logic. Never imports rclpy."""
