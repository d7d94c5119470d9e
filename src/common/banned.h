/*
 * banned.h - functions that must not appear in KeyMeld sources.
 *
 * Included by every .c file (after system headers). Each banned name is
 * redefined to an undeclared identifier so a use fails to compile; the CI
 * script tools/checksrc.sh backs this up with a grep.
 *
 * Why: unbounded copies (strcpy, strcat, sprintf, vsprintf, gets), silently
 * truncating copies (strncpy), non-reentrant or unchecked conversions
 * (strtok, atoi, atol, gmtime, localtime, ctime), unsafe temp files (mktemp,
 * tmpnam). Use snprintf / memcpy with explicit lengths, strtoull with range
 * checks, gmtime_r, mkstemp.
 */
#ifndef KM_COMMON_BANNED_H
#define KM_COMMON_BANNED_H

#define KM_BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) KM_BANNED(strcpy)
#undef strcat
#define strcat(x, y) KM_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) KM_BANNED(strncpy)
#undef sprintf
#define sprintf(...) KM_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) KM_BANNED(vsprintf)
#undef gets
#define gets(x) KM_BANNED(gets)
#undef strtok
#define strtok(x, y) KM_BANNED(strtok)
#undef atoi
#define atoi(x) KM_BANNED(atoi)
#undef atol
#define atol(x) KM_BANNED(atol)
#undef gmtime
#define gmtime(x) KM_BANNED(gmtime)
#undef localtime
#define localtime(x) KM_BANNED(localtime)
#undef ctime
#define ctime(x) KM_BANNED(ctime)
#undef mktemp
#define mktemp(x) KM_BANNED(mktemp)
#undef tmpnam
#define tmpnam(x) KM_BANNED(tmpnam)

#endif /* KM_COMMON_BANNED_H */
