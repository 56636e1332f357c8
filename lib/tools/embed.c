/*
 * embed.c - turns a file into a C source file that defines
 *   const unsigned char NAME[];  const size_t NAME_len;
 * so the dataset is part of the build and the server needs no file at run
 * time. Used by the build only.
 *
 * usage: facts-embed NAME INPUT OUTPUT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int valid_identifier(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4 || !valid_identifier(argv[1])) {
        fprintf(stderr, "usage: facts-embed NAME INPUT OUTPUT\n");
        return 2;
    }
    FILE *in = fopen(argv[2], "rb");
    if (!in) {
        perror(argv[2]);
        return 1;
    }
    FILE *out = fopen(argv[3], "wb");
    if (!out) {
        perror(argv[3]);
        fclose(in);
        return 1;
    }
    fprintf(out, "/* Generated at build time from the dataset file. Do not edit. */\n"
                 "#include <stddef.h>\n"
                 "extern const unsigned char %s[];\n"
                 "extern const size_t %s_len;\n"
                 "const unsigned char %s[] = {\n",
            argv[1], argv[1], argv[1]);
    size_t total = 0;
    int c;
    while ((c = fgetc(in)) != EOF) {
        fprintf(out, "%s0x%02x,", total % 16 == 0 ? "\n" : "", (unsigned)c);
        total++;
    }
    /* A trailing NUL, not counted in the length, keeps the array non-empty
     * and lets readers treat it as a string. */
    fprintf(out, "0x00\n};\nconst size_t %s_len = %zu;\n", argv[1], total);
    int failed = ferror(in) || ferror(out);
    fclose(in);
    if (fclose(out) != 0)
        failed = 1;
    if (failed) {
        fprintf(stderr, "facts-embed: I/O error\n");
        remove(argv[3]);
        return 1;
    }
    return 0;
}
