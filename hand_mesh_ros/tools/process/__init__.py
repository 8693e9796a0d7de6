"""Offline processing: video, image folders and rosbag2 in, the node's outputs out."""
