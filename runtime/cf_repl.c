/* cf_repl: placeholder until the REPL lands (being written now); not committed. */
#include <stdio.h>

#include "cf_repl.h"

int cf_repl(lua_State *L)
{
    (void)L;
    fputs("cfrun: the REPL is not built yet\n", stderr);
    return 2;
}
