"""What a sample measures with: clocks, CPU and GPU memory, the page cache."""
