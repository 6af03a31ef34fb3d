#!/usr/bin/perl
# Bulk seeding of a throw-away Request Tracker 5 for the benchmark, with RT's own code.
#
# Seeding through HTTP (sandbox/request_tracker.py `seed`) costs a request, a web worker and a
# SQLite commit per message: ~2-9 messages a second, hours for the benchmark's 10,000 tickets.
# This script does the same work in one process against the RT's SQLite database before
# rt-server starts: users through RT::User->Create (what REST2 POST /user calls), customers'
# mail through RT::Interface::Email::Gateway (what the mail gateway /REST/1.0/NoAuth/mail-gateway
# calls, so RT parses the raw MIME, creates users from From/Cc, runs its scrips), staff replies
# through RT::Ticket->Correspond with the MIME entity REST2 builds. RT writes every row itself.
#
# Differences from the HTTP seed, none of which changes what RT stores: mail RT sends (its
# notifications, still recorded as transactions) goes to /dev/null without forking a sendmail;
# SQLite does not fsync each commit (the database is throw-away until it is complete and copied
# into the cache), and commits are batched per ticket. One process: two seeding one database
# at once were slower on this 2-core machine (SQLite serialises the writes).
#
# Input on stdin, one JSON object a line (written by sandbox/request_tracker.py):
#   {"user": {"Name": ..., "EmailAddress": ..., "RealName": ..., "Organization": ..., "MobilePhone": ...}}
#   {"ticket": KEY, "messages": [{"mail": BASE64 raw MIME}, {"staff": TEXT}, ...]}
# A follow-up mail carries the placeholder given as the first argument where the ticket id goes
# (the subject tag "[rt.sandbox #ID]"), since the id is known only once RT created the ticket.
# Output on stdout: one JSON object {"users": N, "tickets": N, "messages": N}. Progress on stderr,
# counts only (no personal data).
use strict;
use warnings;
use lib '/usr/share/request-tracker5/lib';

use Encode ();
use JSON ();
use MIME::Base64 ();
use RT;

my $placeholder = shift @ARGV or die "usage: rt_bulk_seed.pl TICKET_ID_PLACEHOLDER < plan.jsonl\n";

RT::LoadConfig();
RT::Init();
require RT::Interface::Email;
require RT::Interface::Web;  # HTML::Mason::Commands::MakeMIMEEntity, as REST2 uses it

# Notifications: built, recorded, then written to /dev/null in-process.
RT->Config->Set(MailCommand => 'testfile');
{ no warnings "once"; $Mail::Mailer::testfile::config{outfile} = "/dev/null"; }
$RT::Handle->dbh->do('PRAGMA synchronous = OFF');
$RT::Handle->dbh->do('PRAGMA journal_mode = MEMORY');

my $root = RT::CurrentUser->new(RT->SystemUser);
$root->Load('root');
$root->id or die "no root user in this RT\n";

my %count = (users => 0, tickets => 0, messages => 0);
my $json = JSON->new->utf8;
my $started = time;

while (my $line = <STDIN>) {
    next unless $line =~ /\S/;
    my $item = $json->decode($line);
    if (my $user = $item->{user}) {
        my $u = RT::User->new(RT->SystemUser);
        my ($ok, $msg) = $u->Create(%$user, Privileged => 0);
        die "RT refused a user (record $count{users}): $msg\n" unless $ok;
        $count{users}++;
        next;
    }
    my $ticket_id;
    $RT::Handle->BeginTransaction;
    for my $m (@{ $item->{messages} }) {
        if (defined $m->{mail}) {
            my $raw = MIME::Base64::decode_base64($m->{mail});
            if (defined $ticket_id) {
                $raw =~ s/\Q$placeholder\E/$ticket_id/g;
            }
            my ($status, $msg, $ticket) = RT::Interface::Email::Gateway({
                queue => 'General', action => 'correspond', message => $raw,
            });
            die "RT mail gateway refused a message of ticket $item->{ticket}: status $status\n"
                unless $status == 1 && $ticket && $ticket->id;
            $ticket_id //= $ticket->id;
        } else {
            die "ticket $item->{ticket}: a staff reply before the ticket exists\n" unless defined $ticket_id;
            my $ticket = RT::Ticket->new($root);
            $ticket->Load($ticket_id);
            my $mime = HTML::Mason::Commands::MakeMIMEEntity(
                Interface => 'REST', Body => $m->{staff}, Type => 'text/plain',
            );
            my ($ok, $msg) = $ticket->Correspond(MIMEObj => $mime, TimeTaken => 0);
            die "RT refused a staff reply on ticket $item->{ticket}: $msg\n" unless $ok;
        }
        $count{messages}++;
    }
    $RT::Handle->Commit;
    $count{tickets}++;
    if ($count{tickets} % 500 == 0) {
        my $spent = (time - $started) || 1;
        printf STDERR "rt_bulk_seed: %d tickets, %d messages, %.1f messages/s\n",
            $count{tickets}, $count{messages}, $count{messages} / $spent;
    }
}

print $json->encode(\%count), "\n";
