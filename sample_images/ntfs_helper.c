/*
 * ntfs_helper.c -- populate an NTFS image file through libntfs-3g, without mounting it.
 *
 * Part of kiosk's sample-image builder (sample_images/build.py compiles and runs it).  The
 * ntfs-3g command-line tools can copy a file into an existing directory (ntfscp) but cannot
 * create directories, add alternate data streams to arbitrary files or delete files, and
 * mounting (FUSE, loop devices) is not allowed for the builder.  This helper opens the image
 * file directly with ntfs_mount() -- which, despite its name, only opens the file as an NTFS
 * volume in this process -- and executes a tiny script read from standard input, one command
 * per line, fields separated by TAB characters:
 *
 *     mkdir <path>                         create a directory
 *     put   <path> <host file>             create a file with the host file's bytes
 *     ads   <path> <stream> <host file>    add the named $DATA stream <path>:<stream>
 *     rm    <path>                         delete a file the way ntfs-3g does (the MFT
 *                                          record is marked unused and its clusters freed,
 *                                          but neither is overwritten)
 *
 * Paths are absolute, '/'-separated and UTF-8.  Any error aborts with exit status 1.
 *
 * Reproducibility: every timestamp libntfs-3g writes comes from clock_gettime()/time().  This
 * program defines both, so the library's calls bind to them (an executable's definitions
 * interpose on the shared C library's) and every time stamp becomes KIOSK_NTFS_TIME (seconds
 * since the Unix epoch, a build-time constant passed with -D).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/volume.h>

#ifndef KIOSK_NTFS_TIME
#define KIOSK_NTFS_TIME 1764201600L /* 2025-11-27T00:00:00Z */
#endif

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	(void)clk;
	ts->tv_sec = KIOSK_NTFS_TIME;
	ts->tv_nsec = 0;
	return 0;
}

time_t time(time_t *out)
{
	if (out)
		*out = KIOSK_NTFS_TIME;
	return KIOSK_NTFS_TIME;
}

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "ntfs_helper: %s: %s: %s\n", what, arg, strerror(errno));
	exit(1);
}

static unsigned char *slurp(const char *host, size_t *len)
{
	FILE *f = fopen(host, "rb");
	unsigned char *buf;
	long n;

	if (!f)
		die("open host file", host);
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		die("seek host file", host);
	buf = malloc((size_t)n + 1);
	if (!buf)
		die("malloc", host);
	if (n && fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("read host file", host);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Split "/a/b/c" into the parent directory inode ("/a/b") and the UTF-16 name ("c"). */
static ntfs_inode *open_parent(ntfs_volume *vol, const char *path, ntfschar **uname, int *ulen)
{
	char *copy = strdup(path);
	char *slash = strrchr(copy, '/');
	ntfs_inode *dir_ni;

	if (!slash || !slash[1])
		die("bad path", path);
	*slash = '\0';
	dir_ni = ntfs_pathname_to_inode(vol, NULL, copy[0] ? copy : "/");
	if (!dir_ni)
		die("open parent directory", path);
	*uname = NULL;
	*ulen = ntfs_mbstoucs(slash + 1, uname);
	if (*ulen <= 0)
		die("convert name to UTF-16", path);
	free(copy);
	return dir_ni;
}

static void write_stream(ntfs_inode *ni, ntfschar *sname, int slen, const char *host,
			 const char *path)
{
	size_t len;
	unsigned char *buf = slurp(host, &len);
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, sname, (u32)slen);

	if (!na)
		die("open $DATA", path);
	if (len && ntfs_attr_pwrite(na, 0, (s64)len, buf) != (s64)len)
		die("write $DATA", path);
	ntfs_attr_close(na);
	free(buf);
}

static void do_create(ntfs_volume *vol, const char *path, const char *host, mode_t type)
{
	ntfschar *uname;
	int ulen;
	ntfs_inode *dir_ni = open_parent(vol, path, &uname, &ulen);
	ntfs_inode *ni = ntfs_create(dir_ni, const_cpu_to_le32(0), uname, (u8)ulen, type);

	if (!ni)
		die("create", path);
	/*
	 * Close the parent first: closing the new inode re-opens the parent to update the
	 * size in its index entry, and without libntfs-3g's inode cache that second copy only
	 * sees the new entry once the first one has been written back.
	 */
	if (ntfs_inode_close(dir_ni))
		die("close parent", path);
	if (host)
		write_stream(ni, AT_UNNAMED, 0, host, path);
	if (ntfs_inode_close(ni))
		die("close inode", path);
	free(uname);
}

static void do_ads(ntfs_volume *vol, const char *path, const char *stream, const char *host)
{
	ntfschar *sname = NULL;
	int slen = ntfs_mbstoucs(stream, &sname);
	ntfs_inode *ni = ntfs_pathname_to_inode(vol, NULL, path);

	if (slen <= 0)
		die("convert stream name to UTF-16", stream);
	if (!ni)
		die("open", path);
	if (ntfs_attr_add(ni, AT_DATA, sname, (u8)slen, NULL, 0))
		die("add stream", stream);
	write_stream(ni, sname, slen, host, path);
	if (ntfs_inode_close(ni))
		die("close inode", path);
	free(sname);
}

static void do_rm(ntfs_volume *vol, const char *path)
{
	ntfschar *uname;
	int ulen;
	ntfs_inode *dir_ni = open_parent(vol, path, &uname, &ulen);
	ntfs_inode *ni = ntfs_pathname_to_inode(vol, NULL, path);

	if (!ni)
		die("open", path);
	/* ntfs_delete() always closes both inodes. */
	if (ntfs_delete(vol, path, ni, dir_ni, uname, (u8)ulen))
		die("delete", path);
	free(uname);
}

int main(int argc, char **argv)
{
	char line[8192];
	ntfs_volume *vol;

	if (argc != 2) {
		fprintf(stderr, "usage: %s IMAGE < SCRIPT\n", argv[0]);
		return 2;
	}
	vol = ntfs_mount(argv[1], 0);
	if (!vol)
		die("open volume", argv[1]);
	while (fgets(line, sizeof(line), stdin)) {
		char *fields[4] = {NULL, NULL, NULL, NULL};
		char *save = NULL;
		int n = 0;

		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		for (char *tok = strtok_r(line, "\t", &save); tok && n < 4;
		     tok = strtok_r(NULL, "\t", &save))
			fields[n++] = tok;
		errno = EINVAL;
		if (!strcmp(fields[0], "mkdir") && n == 2)
			do_create(vol, fields[1], NULL, S_IFDIR);
		else if (!strcmp(fields[0], "put") && n == 3)
			do_create(vol, fields[1], fields[2], S_IFREG);
		else if (!strcmp(fields[0], "ads") && n == 4)
			do_ads(vol, fields[1], fields[2], fields[3]);
		else if (!strcmp(fields[0], "rm") && n == 2)
			do_rm(vol, fields[1]);
		else
			die("bad command", fields[0]);
	}
	if (ntfs_umount(vol, FALSE))
		die("close volume", argv[1]);
	return 0;
}
