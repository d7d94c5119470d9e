/*
 * replay_main.c - runs a libFuzzer target over its committed corpus as an
 * ordinary test (no clang needed), and mutates every corpus file a little:
 * each truncation (sampled for long files) and a set of deterministic
 * single-bit flips. Crashes and sanitizer reports fail the test.
 *
 *   fuzz_replay_<name> <corpus-dir-or-file>...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_FILE (4u << 20)
#define REPLAY_FLIPS    64

static int replay_one(const uint8_t *data, size_t size)
{
    /* A fresh heap copy so ASan catches reads past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
    return 0;
}

static int replay_file(const char *path, unsigned long *runs)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    uint8_t *data = malloc(REPLAY_MAX_FILE);
    size_t size = data ? fread(data, 1, REPLAY_MAX_FILE, f) : 0;
    fclose(f);
    if (data == NULL)
        return -1;

    replay_one(data, size);
    (*runs)++;
    /* Truncations: every prefix for short inputs, ~256 for long ones. */
    size_t step = size > 256 ? size / 256 : 1;
    for (size_t n = 0; n < size; n += step, (*runs)++)
        replay_one(data, n);
    /* Bit flips at positions spread over the input. */
    uint32_t x = 2463534242u;
    for (int i = 0; size > 0 && i < REPLAY_FLIPS; i++, (*runs)++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t pos = x % size;
        uint8_t bit = (uint8_t)(1u << (x >> 29));
        data[pos] ^= bit;
        replay_one(data, size);
        data[pos] ^= bit;
    }
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long files = 0, runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "no such corpus: %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i], &runs) != 0)
                return 1;
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (replay_file(path, &runs) != 0)
                return 1;
            files++;
        }
        if (d)
            closedir(d);
    }
    if (files == 0) {
        fprintf(stderr, "empty corpus\n");
        return 1;
    }
    printf("replayed %lu corpus files (%lu runs with mutations)\n", files, runs);
    return 0;
}
