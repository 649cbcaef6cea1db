# Sourced by the scripts that split the sharp photos (../shared/photos) between the quality benchmark and
# training: one list of the benchmark's photos, so that no training set can include one.
#
#   benchmark_photos DIR   # the five held-out photos, in the benchmark's order (it numbers sequences by it)
#   training_photos DIR    # every other *.jpg, in name order

BENCHMARK_PATTERNS=(seeding-* sunset-* kleiber-* mate-storm.jpg mate-ladybird.jpg)

benchmark_photos() {
  local pattern photo
  for pattern in "${BENCHMARK_PATTERNS[@]}"; do
    for photo in "$1"/$pattern; do
      [ -e "$photo" ] && echo "$photo"
    done
  done
}

training_photos() {
  local photo pattern
  for photo in "$1"/*.jpg; do
    for pattern in "${BENCHMARK_PATTERNS[@]}"; do
      # shellcheck disable=SC2053  # the pattern is meant to glob
      [[ $(basename "$photo") == $pattern ]] && continue 2
    done
    echo "$photo"
  done
}
