/* web: the dashboard's files; see web.h. */
#include "web.h"

#include <string.h>

int web_asset_find(const char *path, const struct web_asset **out)
{
    for (size_t i = 0; i < web_asset_count; i++) {
        if (strcmp(path, web_assets[i].path) == 0) {
            *out = &web_assets[i];
            return 0;
        }
    }
    return CTRD_ENOTFOUND;
}
