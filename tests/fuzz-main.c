/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Runs a fuzz target over every file of a seed corpus directory once, so the corpora act as
 * regression tests in every build, without libFuzzer.
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        FILE *f;
        uint8_t *buf;
        long n;

        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "Failed to open %s: %m\n", path);
                return -1;
        }
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -1;
        }
        buf = malloc((size_t) n + 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t) n);
        free(buf);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned n = 0;

        for (int i = 1; i < argc; i++) {
                struct dirent **list;
                int k;

                k = scandir(argv[i], &list, NULL, alphasort);
                if (k < 0) {
                        fprintf(stderr, "Failed to read corpus %s: %m\n", argv[i]);
                        return EXIT_FAILURE;
                }
                for (int j = 0; j < k; j++) {
                        char *p;

                        if (list[j]->d_name[0] != '.' &&
                            asprintf(&p, "%s/%s", argv[i], list[j]->d_name) >= 0) {
                                if (run_file(p) < 0)
                                        return EXIT_FAILURE;
                                n++;
                                printf("ok %u - %s\n", n, p);
                                fflush(stdout);
                                free(p);
                        }
                        free(list[j]);
                }
                free(list);
        }
        fprintf(stderr, "%u corpus inputs ran\n", n);
        return n > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
