"""Reference signal finders: streaming functions over dataset files that yield signals."""
