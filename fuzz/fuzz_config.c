/* fuzz/fuzz_config.c: libFuzzer target for the configuration loader (daemon/config.c).
 *
 * Each input is the text of a configuration file, written to a file of this process's own
 * and loaded with config_load. It must return either a configuration (at least one
 * listener, each with its binds and handler) or an error message, never crash, hang (the
 * loader stops a configuration past its instruction count and memory cap) or leak (ASan's
 * leak check at exit, config_free of every configuration). The file stays where it is
 * between inputs; it is removed at exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer gives no context: the one file path of this process, made on first use. */
static char fuzz_path[64];

static void fuzz_remove(void)
{
    unlink(fuzz_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_path[0]) {
        snprintf(fuzz_path, sizeof fuzz_path, "/tmp/fuzz_config.%ld.conf", (long)getpid());
        atexit(fuzz_remove);
    }
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(fuzz_path);
        abort();
    }
    struct config *cfg = NULL;
    char err[1024];
    err[0] = '\0';
    if (config_load(fuzz_path, &cfg, err, sizeof err) == 0) {
        if (!cfg || cfg->nlisteners == 0) {
            fprintf(stderr, "fuzz_config: a configuration without listeners\n");
            abort();
        }
        for (size_t i = 0; i < cfg->nlisteners; i++)
            if (!cfg->listeners[i].nbinds || !cfg->listeners[i].handler_path) {
                fprintf(stderr, "fuzz_config: listener %zu without bind or handler\n", i);
                abort();
            }
        config_free(cfg);
    } else if (!err[0] || !memchr(err, '\0', sizeof err)) {
        fprintf(stderr, "fuzz_config: an error without a message\n");
        abort();
    }
    return 0;
}
