"""Where frames come from when there is no camera: the built-in sample, recorded RGB-D folders and
bags. Used by the sample camera node, the demo and the benchmarks; the core never imports them."""
