using System.IO;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

/// <summary>
/// A Unix listener's socket file: created 0600 so no other local user can connect, and an existing
/// path replaced only when it is a (stale) socket; anything else there is refused and left alone.
/// </summary>
[TestClass]
public sealed class UnixSocketFileTests
{
    private string _dir = "";

    [TestInitialize]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("mk-socketfile-").FullName;

    [TestCleanup]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [TestMethod]
    [SupportedOSPlatform("linux")]
    public async Task Listener_CreatesItsSocketFileReadableAndWritableByItsOwnerOnly()
    {
        string path = Path.Combine(_dir, "owner-only.sock");
        await using MigrationListener listener = MigrationListener.Listen("unix:" + path);

        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [TestMethod]
    [SupportedOSPlatform("linux")]
    public async Task Listener_ReplacesAStaleSocket_WithAnOwnerOnlyOne()
    {
        string path = Path.Combine(_dir, "stale.sock");
        LeaveStaleSocket(path);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);

        await using MigrationListener listener = MigrationListener.Listen("unix:" + path);

        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [TestMethod]
    public async Task Listener_RefusesARegularFileAtThePath_NamingIt_AndLeavesItInPlace()
    {
        string path = Path.Combine(_dir, "precious.txt");
        await File.WriteAllTextAsync(path, "not a socket");

        MigrationConnectionException ex = Assert.ThrowsExactly<MigrationConnectionException>(() => MigrationListener.Listen("unix:" + path));

        Assert.AreEqual("unix:" + path, ex.Address);
        StringAssert.Contains(ex.Message, $"{path} exists and is not a socket; it was left in place");
        Assert.AreEqual("not a socket", await File.ReadAllTextAsync(path));
    }

    [TestMethod]
    public void Listener_RefusesASymbolicLinkToASocket_AndLeavesBothInPlace()
    {
        string target = Path.Combine(_dir, "real.sock");
        LeaveStaleSocket(target);
        string link = Path.Combine(_dir, "link.sock");
        File.CreateSymbolicLink(link, target);

        Assert.ThrowsExactly<MigrationConnectionException>(() => MigrationListener.Listen("unix:" + link));

        Assert.IsNotNull(new FileInfo(link).LinkTarget);
        Assert.IsTrue(File.Exists(target));
    }

    [TestMethod]
    public void Listener_RefusesADirectoryAtThePath()
    {
        string path = Directory.CreateDirectory(Path.Combine(_dir, "a-directory")).FullName;

        MigrationConnectionException ex = Assert.ThrowsExactly<MigrationConnectionException>(() => MigrationListener.Listen("unix:" + path));

        StringAssert.Contains(ex.Message, "is not a socket");
        Assert.IsTrue(Directory.Exists(path));
    }

    /// <summary>Leaves a socket file nobody listens on at <paramref name="path"/>, as a crashed listener does.</summary>
    internal static void LeaveStaleSocket(string path)
    {
        // .NET unlinks the file it bound when the socket is disposed: bind elsewhere and move the
        // socket file into place, so the file outlives its socket.
        string bound = path + ".binding";
        using (var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            socket.Bind(new UnixDomainSocketEndPoint(bound));
            File.Move(bound, path);
        }
    }
}
