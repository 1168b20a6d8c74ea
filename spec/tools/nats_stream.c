/* spec/tools/nats_stream.c: a test-only JetStream client (libnats) for the output specs;
 * there is no NATS command-line tool in Debian 12. It owns one connection per run.
 *   nats_stream URL ready           exit 0 once JetStream answers (account info)
 *   nats_stream URL leader STREAM   prints the stream's leader server name
 *   nats_stream URL create STREAM SUBJECT   creates an R1 stream holding SUBJECT
 *   nats_stream URL count STREAM    prints "count N"
 *   nats_stream URL dump STREAM     prints "count N", then per message "id DATA" (the
 *                                   Nats-Msg-Id header and the payload), in stream order
 * Exit 1 when the server or the stream does not answer. */
#include <stdio.h>
#include <string.h>
#include <nats/nats.h>

static int nats_stream_dump(jsCtx *js, const char *stream, int messages)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, js, stream, NULL, &jerr) != NATS_OK)
        return 1;
    printf("count %llu\n", (unsigned long long)si->State.Msgs);
    for (uint64_t seq = si->State.FirstSeq; messages && si->State.Msgs && seq <= si->State.LastSeq;
         seq++) {
        natsMsg *m = NULL;
        natsStatus s = js_GetMsg(&m, js, stream, seq, NULL, &jerr);
        if (s == NATS_NOT_FOUND)
            continue;
        if (s != NATS_OK) {
            jsStreamInfo_Destroy(si);
            return 1;
        }
        const char *id = NULL;
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || !id)
            id = "-";
        printf("%s %.*s\n", id, natsMsg_GetDataLength(m), natsMsg_GetData(m));
        natsMsg_Destroy(m);
    }
    jsStreamInfo_Destroy(si);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: nats_stream URL ready|leader STREAM|dump STREAM\n");
        return 2;
    }
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    int rc = 1;
    if (natsOptions_Create(&opts) != NATS_OK || natsOptions_SetURL(opts, argv[1]) != NATS_OK ||
        natsOptions_SetTimeout(opts, 2000) != NATS_OK ||
        natsConnection_Connect(&nc, opts) != NATS_OK ||
        natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
        goto out;
    jsErrCode jerr = 0;
    if (strcmp(argv[2], "ready") == 0) {
        jsAccountInfo *ai = NULL;
        rc = js_GetAccountInfo(&ai, js, NULL, &jerr) == NATS_OK ? 0 : 1;
        if (ai)
            jsAccountInfo_Destroy(ai);
    } else if (strcmp(argv[2], "leader") == 0 && argc > 3) {
        jsStreamInfo *si = NULL;
        if (js_GetStreamInfo(&si, js, argv[3], NULL, &jerr) == NATS_OK && si->Cluster &&
            si->Cluster->Leader) {
            printf("%s\n", si->Cluster->Leader);
            rc = 0;
        }
        if (si)
            jsStreamInfo_Destroy(si);
    } else if (strcmp(argv[2], "create") == 0 && argc > 4) {
        jsStreamConfig sc;
        jsStreamInfo *si = NULL;
        const char *subjects[1] = {argv[4]};
        jsStreamConfig_Init(&sc);
        sc.Name = argv[3];
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        rc = js_AddStream(&si, js, &sc, NULL, &jerr) == NATS_OK ? 0 : 1;
        if (si)
            jsStreamInfo_Destroy(si);
    } else if (strcmp(argv[2], "dump") == 0 && argc > 3) {
        rc = nats_stream_dump(js, argv[3], 1);
    } else if (strcmp(argv[2], "count") == 0 && argc > 3) {
        rc = nats_stream_dump(js, argv[3], 0);
    }
out:
    if (js)
        jsCtx_Destroy(js);
    if (nc)
        natsConnection_Destroy(nc);
    if (opts)
        natsOptions_Destroy(opts);
    nats_Close();
    return rc;
}
