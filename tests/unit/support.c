/* Helpers shared by the unit tests; see support.h. */
#include "support.h"

#include <criterion/criterion.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

char *
unterminated(const char *s, size_t *len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *map;

	*len = strlen(s);
	cr_assert_lt(*len, page);
	map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mprotect(map + page, page, PROT_NONE), 0);
	memcpy(map + page - *len, s, *len);
	return map + page - *len;
}

void
unterminated_free(char *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	munmap(p + len - page, 2 * page);
}
